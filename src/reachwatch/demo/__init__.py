"""The main job: a lab modelled on the June 2018 Pakistan study, measured end to end."""
