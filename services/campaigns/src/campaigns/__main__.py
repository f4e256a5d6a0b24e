from campaigns.main import main

main()
