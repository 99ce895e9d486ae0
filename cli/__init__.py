"""songmix.cli"""
