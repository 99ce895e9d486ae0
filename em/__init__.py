"""songmix.em"""
