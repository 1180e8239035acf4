"""Rollout: the episode engine, trajectories, the token ledger and the trajectory store."""
