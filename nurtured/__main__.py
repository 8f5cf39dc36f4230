from nurtured.cli import main

main()
