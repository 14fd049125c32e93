from cotforge.cli import main

main()
