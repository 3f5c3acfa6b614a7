"""Chapter 09: the capstone, a small live app built from every chapter."""
