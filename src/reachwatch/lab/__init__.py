"""A censorship lab in network namespaces: ISPs that block, a router that censors, an internet
of sites, and a control vantage. See docs/lab.md."""

from reachwatch.lab.scenario import Scenario, load_scenario
from reachwatch.lab.topology import down, down_all, up

__all__ = ["Scenario", "down", "down_all", "load_scenario", "up"]
