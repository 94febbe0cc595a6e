"""agency_adapters"""
