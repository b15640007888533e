"""The collector: polls monitored servers and delivers to the store (see README's data flow)."""

# The application_name of every collector session (targets and store), so that the wait-event
# sampler can leave the collector's own work out and a DBA can tell it in pg_stat_activity.
APPLICATION_NAME = "pganalytics-collector"
MAINTAIN_APPLICATION_NAME = "pganalytics maintain"
# Both, as the SQL the sampler and the activity source leave out (its delivery to a store on
# the same server, or maintain() there, is not the monitored load).
OWN_SESSIONS = (APPLICATION_NAME, MAINTAIN_APPLICATION_NAME)
