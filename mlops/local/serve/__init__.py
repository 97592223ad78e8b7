"""`mlops local serve`: the inference API over HTTP on this machine, answered by the same
front_door functions as the regional Lambda, against the local online store and the local
registry's model run through the inference.py inside its own model.tar.gz."""
