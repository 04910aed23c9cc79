"""The facts every layer shares: classes, joint layouts and their conversions, split protocols,
sample ids. Numpy and the error types only: `data/`, `models/` and `eval/` import it, it imports
none of them."""
