"""The referring-program language: taxonomy, lexicon, programs and the planner."""
