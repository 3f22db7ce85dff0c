"""The few ``gsy_framework`` names that scripts written for the original SDK import.

Only what SDK_API.md lists; everything lives in ``gsy_e_sdk.compat``. If the real gsy-framework
is installed it should come first on the path; scripts then get the full library.
"""
