"""The synthetic demo dataset: studio photos of rendered cars with exact masks, in Kaggle's layout."""
