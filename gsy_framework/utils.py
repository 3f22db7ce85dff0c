from gsy_e_sdk.compat import key_in_dict_and_not_none, key_in_dict_and_not_none_and_greater_than_zero

__all__ = ["key_in_dict_and_not_none", "key_in_dict_and_not_none_and_greater_than_zero"]
