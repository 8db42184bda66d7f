"""The lab's servers: authoritative DNS, web + blockpage, censoring resolver, blockpage proxy.

Run as ``python -m reachwatch.lab.servers ROLE CONFIG.json --ready-fd N`` inside a namespace.
"""
