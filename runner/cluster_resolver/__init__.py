"""taskhub as a cluster's resolver: ResolutionRequests watched and answered from this hub's index."""
