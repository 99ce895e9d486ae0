"""songmix.audio"""
