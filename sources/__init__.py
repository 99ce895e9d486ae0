"""songmix.sources"""
