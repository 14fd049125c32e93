from cotforge.entry import main

main()
