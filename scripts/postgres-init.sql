-- The databases of the docker-compose deployment's nodes beside retail's (POSTGRES_DB).
CREATE DATABASE contractor OWNER hdx;
CREATE DATABASE service OWNER hdx;
