"""The collector: receives measurements (OONI's collector protocol and a native batch API),
attributes them to a network, scrubs the submitter's address, analyses and stores them."""
