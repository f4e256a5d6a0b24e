from scoring.main import main

main()
