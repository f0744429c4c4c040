"""Tests for b2bua: tests/unit/ for the pure layers, tests/integration/ for twistd + SIPp."""
