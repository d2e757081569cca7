from lit_videor2.cli import run

if __name__ == "__main__":
    run()
