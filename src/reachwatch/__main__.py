from reachwatch.cli import main

main()
