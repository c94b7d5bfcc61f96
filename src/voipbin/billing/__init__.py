"""Billing: accounts with balances in micros, a ledger of charges, balance checks."""
