"""songmix.warehouse"""
