"""songmix.analysis"""
