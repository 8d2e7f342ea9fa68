"""``python -m bnlab``: print the seed's batch-norm walkthrough, computed with bnlab."""

from .walkthrough import walkthrough_text

if __name__ == "__main__":
    print(walkthrough_text(), end="")
