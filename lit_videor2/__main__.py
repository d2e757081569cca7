from lit_videor2.cli import main

if __name__ == "__main__":
    main()
