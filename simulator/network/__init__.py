"""The discrete-event model of the teacher -> link -> apprentice chain (simpy)."""
