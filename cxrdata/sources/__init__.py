"""One module per dataset: finds files, yields raw records, knows that dataset's quirks."""
