from ganctl.cli import main

main()
