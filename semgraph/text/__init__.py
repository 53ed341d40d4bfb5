"""Text: free-text queries to term vectors, synonyms, generated captions, and fused text + term ranking."""
