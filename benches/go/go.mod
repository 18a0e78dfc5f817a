module gpbench

go 1.19
