"""What the marketer configures: label sets, labels, messages, campaigns."""
