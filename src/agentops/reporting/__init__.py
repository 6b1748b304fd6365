"""The manager report: incidents and how fast they were detected, decided and rolled back."""
