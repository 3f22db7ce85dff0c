"""Wire-level facts shared by the SDK and the local exchange (channel names, slugs, times).

Both sides import these so they can never disagree on a channel string or a time format.
"""
