"""Provisioning portal for hosted developer infrastructure."""
