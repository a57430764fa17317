"""The converter's entry point, as in the reference: `python -m consumer` from this folder."""

from converter_service import main

if __name__ == "__main__":
    main()
