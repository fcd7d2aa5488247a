-- wrk script: plain GETs of the path given on the command line, with the bench's report.
dofile(os.getenv("GF_WRK_REPORT"))
