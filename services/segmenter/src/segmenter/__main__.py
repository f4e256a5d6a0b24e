from segmenter.main import main

main()
