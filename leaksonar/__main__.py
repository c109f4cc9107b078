from leaksonar.cli import main

main()
