"""songmix.flows"""
