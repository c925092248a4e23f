"""The benchmark (`python -m bot bench`): our cost per update against a bare PTB floor, and the year-end work at scale."""
