"""Stand-ins: small servers written for the lab from public API docs, where no real server is packaged.

Each one says it is a stand-in, in its own code and in the docstring of the lab kind that runs it.
"""
