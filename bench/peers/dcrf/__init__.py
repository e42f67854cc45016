"""djangochannelsrestframework's model observer, written as its README shows it."""
