from gsy_e_sdk.cli import main

main()
