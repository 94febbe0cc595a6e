"""safeshare"""
