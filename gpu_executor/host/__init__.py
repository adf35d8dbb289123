"""What a fleet host runs at boot: the set-up script (setup.sh), its boot record and the dataset copy."""
