"""songmix.tasks"""
