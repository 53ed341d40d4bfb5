"""Retrieval: term dissimilarities, HSBD and its index, the search engine, explanations, and how results are grouped, put on a timeline and summarised."""
