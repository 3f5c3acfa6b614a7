"""The course's reference implementation of the auction's live parts: what the exercises build, as a package.

Chapter 09's lesson runs it; the exercises build the same three modules in a package of your own
(`auction_live`, in the notebook's data directory). Try the exercises before you read these files.
"""
